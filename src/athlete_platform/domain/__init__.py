"""Physiology and sport rules: TRIMP, Daniels VDOT, Riegel, race distances, limits. Pure, no I/O."""
