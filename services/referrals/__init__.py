"""Referrals (移送): a case or clue handed from one body to another, answered and tracked."""
