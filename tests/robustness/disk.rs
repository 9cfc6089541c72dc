//! A member whose data dir runs out of space, and one that cannot read its data dir.
