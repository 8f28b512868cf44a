//! Fooling images and adversarial attacks (filled in by the adversarial work).
