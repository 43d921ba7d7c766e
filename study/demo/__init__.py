"""Demo content for `manage.py seed_demo` (가스기사 facts, JLPT N3 kanji)."""
