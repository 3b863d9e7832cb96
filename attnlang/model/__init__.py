"""The analytical model and design-space exploration (docs/explore.md).

`analytic.estimate` costs a kernel for arrays of candidates at once;
`explore.explore` searches a kernel's whole param space with it
(the command, `attn explore`, is attnlang/cli/explore.py).
"""
