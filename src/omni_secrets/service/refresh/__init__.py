"""Cache refreshes an operator (or a GSM event) asks of one replica, run on every live replica.

``service`` decides (stores the request, runs it here, records each replica's outcome),
``request_log`` is this replica's memory of its own requests, ``events`` what the service
reports, ``reactions`` what follows (audit rows, log lines, the peer announcement) and ``build``
its builder.
"""
