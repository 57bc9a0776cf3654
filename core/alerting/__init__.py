"""Alerting: who is told when a check fails or governance needs them, each persona in their own words, in
the inbox and through channels (Slack, e-mail, signed webhooks).

- `alerts`: Alerts: a failed check fanned out to its audience, each person in their own words; inbox and deliveries.
- `channels`: Alert channels: in-app, Slack incoming webhook, e-mail over SMTP, signed webhook.
- `notifications`: Notifications: alerting named people, or every holder of a role, in their inbox and through the channels.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "alerts": (
        "AlertRead", "DeliveryRead", "explain_link", "fan_out", "fan_out_many", "notify", "inbox",
        "unread_count", "acknowledge", "deliveries", "retry_delivery", "deliver_due",
    ),
    "channels": (
        "ChannelRead", "define_channel", "list_channels", "get_channel", "send",
    ),
})
