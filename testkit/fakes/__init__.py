"""Vendor fakes with teeth: loopback HTTP servers that enforce the vendors' contracts
(../shared/contracts/README.md) and answer with their real response and error shapes."""
