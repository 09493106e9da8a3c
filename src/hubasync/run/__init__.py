"""The resumable run: page after page from the hub into the output, with its state, retried at
one level."""
