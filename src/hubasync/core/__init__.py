"""The protocol core: share URLs, queries, the job's phases, the cursor, retries and bounds.

No sockets and no files: everything here is decided from values, and tested without a network."""
