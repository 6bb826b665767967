"""The `attn-grade` click commands, one module per group of commands."""
