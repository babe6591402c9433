"""Responsibility reports (seed §四): the written records that hold people to account.

Quarterly township reports, department response records, the annual satellite-enforcement
ranking and public notices of typical cases, read from the registry and department tables.
"""
