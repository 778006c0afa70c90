"""GenD (Yermakov et al., WACV 2026): the detector (:mod:`.detector`), its hypersphere losses
(:mod:`.losses`) and the converter of its Hugging Face checkpoints (:mod:`.released`)."""
