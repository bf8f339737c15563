import t from 'tap';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { addressStoreContract } from './address-store.contract.ts';

addressStoreContract(t, async () => ({ persistent: false, open: (options) => openMemoryAddressStore(options) }));
