"""Document sources: each an async stream of messages with an acknowledgement."""
