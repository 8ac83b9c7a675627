//! Authentication: who a browser or API caller is.
