"""Study specifications and report templates, shipped inside the package as
registry._reports.

Read them through registry.resources (default_study, template_env, reports_text), never by
path.
"""
