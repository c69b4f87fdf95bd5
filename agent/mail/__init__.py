"""Reading e-mail safely: message normalisation and the mail sources (IMAP, Maildir, mbox)."""
