"""Widgets of the secure chat area (the area itself is ``app/ui/views/chat.py``)."""
