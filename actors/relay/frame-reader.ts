export * from '../../protocol/frame-reader.ts'; // moved to protocol/ (issue 11); this shim goes at merge
