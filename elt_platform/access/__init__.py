"""Access: who is calling, what the policy lets them do, and the governed warehouse every entry
point uses (masking included)."""
