"""Real documents: type detection, parsers, the sandbox they run in, language."""
