"""The neutral base layer: errors, file output, devices and option parsing, command-line
exit handling. Imported by ``network/`` and ``reader/``; imports neither."""
