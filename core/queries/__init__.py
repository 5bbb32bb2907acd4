"""The read side of the API: lists and items of assets, sensors, readings, anomalies and alerts (``service``,
``repository``, ``schemas``) and of incidents with their alerts, work orders, evidence and timeline
(``incidents``, ``incident_repository``, ``incident_schemas``). It reads every domain's tables and writes nothing."""
