"""Study specifications, shipped inside the package as registry._reports.

Read them through registry.resources (default_study), never by path. The report's templates
live in the report stage's package, registry/report/templates.
"""
