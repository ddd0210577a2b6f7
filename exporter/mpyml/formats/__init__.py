"""The model file formats (specified in docs/formats.md): one module per format, each with its writer
and its host reader, plus `records`, what the text formats share (the end record, labels, and the one
record reader `records.Records`).

  trees.py      mpyml-trees      (emltrees)
  neighbors.py  mpyml-neighbors  (emlneighbors)
  linear.py     mpyml-linear     (emllinear; also the steps section of mpyml-trees and mpyml-neighbors)
  mixture.py    mpyml-mixture    (emlmixture)
  nets.py       mpyml-nets, binary (emlcnn)

A format module imports the stored model it writes (mpyml.trees.StoredForest, ...) and nothing above
it: the registry, verify and the tools import the formats, never the other way round. The mpyml-iir
coefficients file is written and read by mpyml.iir (save, load), its public home.
"""
