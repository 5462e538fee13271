"""Notifications (e-mail, webhooks) that leave after commit, from one outbox."""
