"""``hubasync sync`` and ``hubasync status``: many shares followed by one process."""
