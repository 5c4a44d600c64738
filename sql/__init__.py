"""The SQL files of vertebral-registry, shipped inside the package as registry._sql.

Read them through registry.resources (sql_text, sql_names), never by path.
"""
