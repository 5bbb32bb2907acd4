"""Incidents: alerts of one asset within the correlation window grouped into one incident, with its evidence and
timeline (``models``, ``repository``, ``service``). The alerting service attaches alerts to them, the anomaly agent
notes regime changes in their timeline, maintenance closes them; the API reads them through ``core.queries``."""
