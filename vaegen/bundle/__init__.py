"""The model bundle format, in one home: locating and reading a bundle (read),
writing one's files (write), its numpy records (records) and its model card (card)."""
