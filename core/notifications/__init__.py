"""Notifications: webhook subscriptions, signed webhook and e-mail deliveries with retries (issue 4, point 5).

See docs/architecture/notifications.md. ``signing`` (sign/verify for receivers), ``envelope`` (what is sent),
``service`` (subscriptions, enqueueing), ``worker`` (the delivery loop), ``email`` (SMTP).
"""
