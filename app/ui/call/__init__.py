"""The call GUI: pre-join preview and incoming-call prompt (``prejoin``), the call window
(``view``) with its tiles (``tiles``), and the controller that ties them to the session's
CallsService (``controller``); wired per sign-in by ``setup``."""
