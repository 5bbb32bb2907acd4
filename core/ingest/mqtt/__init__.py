"""MQTT ingest: devices publish readings to ``<prefix>/<site>/<sensor_id>/readings`` (QoS 1); the bridge writes
them through the same ``IngestService`` as ``POST /api/v1/data/ingest`` and acknowledges each message only after
its readings are committed (docs/architecture/mqtt.md).

``topics`` (topic names), ``messages`` (a message's checks, rejection notices), ``bridge`` (batching, ingest,
rejections, acknowledgements), ``client`` (the paho-mqtt connection: persistent session, manual acks),
``runner`` (both together for one process).
"""
