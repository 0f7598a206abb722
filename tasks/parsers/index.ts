// Public surface of the pure parsers. Each module imports nothing of ours except ./errors.js.
export * from './errors.js';
export * from './sniff.js';
export * from './fseq.js';
export * from './xsq.js';
export * from './audio.js';
