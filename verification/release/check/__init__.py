"""``ane-verify check``: judge a package converted by anyone against the model it was converted from."""
