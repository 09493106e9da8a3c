"""Files on disk: outputs written a page at a time, the resume state, and one writer per file."""
