"""GSM event notifications (Pub/Sub) and the signals they leave on every replica.

``service`` acts on each message (confirms it with GSM first), ``signals`` holds and applies the
revocations and rotation candidates on this replica, ``feed`` is the subscription's state shown
in status, ``events`` what they report, ``reactions`` what follows (alerts, audit rows, log lines,
the event counter, peer announcements) and ``build`` the builders.
"""
