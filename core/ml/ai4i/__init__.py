"""AI4I 2020 classification gauntlet (issue 6 §1): real-file loader (:mod:`.data`), rule-following generator
(:mod:`.generator`), leak-free features and the published failure limits (:mod:`.features`), cross-validation with
thresholds chosen inside the training folds (:mod:`.evaluation`), the registered pyfunc and its promotion evaluator
(:mod:`.model`), figures (:mod:`.plots`) and the notebook driver (:mod:`.gauntlet`)."""
