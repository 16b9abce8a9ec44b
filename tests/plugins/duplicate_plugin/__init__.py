"""A plugin that takes a slug a built-in plugin already has: the server must not boot."""
