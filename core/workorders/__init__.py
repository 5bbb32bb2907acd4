"""Work orders: the ``maintenance_tasks`` and ``maintenance_logs`` tables, which alert severities warrant one
(``policy``) and the lookup of an incident's active work order (``repository``). Opening, escalating and completing
them is ``core.maintenance``."""
