"""Using a trained checkpoint: sampling text from prompts (``sampling``) and chat (``chat``)."""
