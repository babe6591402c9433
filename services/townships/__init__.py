"""Township accountability (seed §四(三), §四(五)): warning talks and rectification deadlines,
praise and criticism, the one-vote veto, and the quarterly responsibility-target report,
which the organisation department reads in its annual assessment."""
