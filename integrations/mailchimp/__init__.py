"""Mailchimp: newsletters sent through Mailchimp, its audience kept behind the ledger (DESIGN §4)."""
