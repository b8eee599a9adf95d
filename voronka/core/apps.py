from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "voronka.core"
    label = "core"
    verbose_name = "Voronka core"

    def ready(self):
        from django.db.backends.signals import connection_created

        from .sqlite import install

        connection_created.connect(install, dispatch_uid="voronka-sqlite-like")

        from django.db.models.signals import post_migrate

        post_migrate.connect(analyze_new_indexes, dispatch_uid="voronka-analyze-new-indexes")


def analyze_new_indexes(sender=None, using="default", **kwargs) -> None:
    """SQLite: after a migration adds an index to a database that has planner statistics, gather them for
    that index's table. Without them SQLite guesses the new index is the best one: a deals list took 2.6 s
    instead of 40 ms at 1M after the (stage, stage_changed_at) index arrived. PostgreSQL keeps its own
    statistics up to date (autovacuum)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite" or sender is None or sender.label != "core":
        return  # once per migrate run: post_migrate is sent for every app
    with connection.cursor() as cursor:
        analyze_unanalyzed(cursor)


def analyze_unanalyzed(cursor) -> list[str]:
    """ANALYZE the tables that have an index without statistics, in a database analyzed before (a new or
    small one, never analyzed, is left as it is). Returns the tables analyzed."""
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    if cursor.fetchone() is None:
        return []
    cursor.execute("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                   "AND name NOT IN (SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL) "
                   "AND tbl_name IN (SELECT tbl FROM sqlite_stat1)")  # tables ANALYZE found rows in
    tables = [row[0] for row in cursor.fetchall()]
    for table in tables:
        cursor.execute(f'ANALYZE "{table}"')
    return tables
