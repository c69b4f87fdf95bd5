"""An example Custode plug-in: a UPS collector and a tape-library report parser."""
