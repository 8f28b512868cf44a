//! Attribution methods: which input pixels move a class score (filled in by the saliency work).
