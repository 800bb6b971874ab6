import { MemoryIdempotencyStore } from '../runtime/idempotency.js';
import { describeIdempotencyStoreConformance } from '../testing/stores.js';

// The in-process store shares its data only within one instance, so every consumer gets the same.
const store = new MemoryIdempotencyStore();
describeIdempotencyStoreConformance('memory', {
  create: () => store,
  features: { tokenRelease: false },
});
