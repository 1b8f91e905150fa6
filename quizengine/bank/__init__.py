"""Question banks: YAML -> validated models -> seeded variants -> rendered prompts and answers."""
