"""Migration 5: the auditor's break-glass sign-off gets a real ``decision`` column.

Until now the decision (approved / flagged) was the review note's first word, as the
client wrote it (``"[approved] ..."``). Rows reviewed that way are carried over: the tag
becomes the decision and leaves the note. A row reviewed without a tag (by an older CLI)
keeps ``decision`` NULL and reads as "reviewed, no decision recorded".
"""

SQL = """
ALTER TABLE break_glass ADD COLUMN decision TEXT
    CHECK (decision IS NULL OR decision IN ('approved', 'flagged'));
UPDATE break_glass
   SET decision = 'approved', review_note = NULLIF(trim(substr(review_note, 11)), '')
 WHERE reviewed_ms IS NOT NULL AND substr(review_note, 1, 10) = '[approved]';
UPDATE break_glass
   SET decision = 'flagged', review_note = NULLIF(trim(substr(review_note, 10)), '')
 WHERE reviewed_ms IS NOT NULL AND substr(review_note, 1, 9) = '[flagged]';
"""
