"""Access review (auditors), approvals (IT admins) and emergency access (clinicians): the
widgets of issue #8. The Qt-free logic is app/services/access_review.py."""
