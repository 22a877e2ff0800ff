"""Everything that speaks to border0: the API client, its errors, and the local emulator."""
