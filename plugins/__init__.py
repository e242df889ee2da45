"""s2s's built-in plugins, installed as the ``s2s_plugins`` package.

Each module is one plugin, registered through the ``s2s`` entry-point group in
pyproject.toml exactly as a third-party plugin would be; ``recurrent.py`` is not a
plugin but the encoder and decoder step that ``lstm`` and ``gru`` share.
"""
