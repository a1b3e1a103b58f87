// Data sets: the Dataset type, readers (idx / Fashion-MNIST, ImageFolder) and seeded selections.
export * from "./dataset.js";
export * from "./idx.js";
export * from "./imagefolder.js";
export * from "./split.js";
export * from "./spec.js";
export * from "./sets.js";
export * from "./stream.js";
export * from "./imagenet-classes.js";
